from instrumentgen.train.cli import main

main()
