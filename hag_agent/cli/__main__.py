from hag_agent.cli.main import main

main()
