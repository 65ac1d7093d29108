from instrumentgen.generate.cli import main

main()
