from graam_pbx.cli import main

main()
