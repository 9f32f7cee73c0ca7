"""Query sets, prompts, grading and shards: what is asked and how an answer is scored."""
