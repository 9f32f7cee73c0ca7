"""Intelligence per Watt (Saad-Falcon, Narayan et al., arXiv 2511.07885): accuracy, IPW and IPJ with intervals, coverage, hybrid routing savings and the release-date trend."""
