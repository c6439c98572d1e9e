from hag_agent.cli.main import main

if __name__ == "__main__":  # not when a worker process re-imports it (serve --workers)
    main()
