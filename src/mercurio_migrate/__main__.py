from mercurio_migrate.cli import main

main()
