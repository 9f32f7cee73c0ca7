from ipw.cli import main

main()
