from instrumentgen.export.cli import main

main()
