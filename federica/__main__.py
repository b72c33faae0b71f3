from federica.cli import main

main()
