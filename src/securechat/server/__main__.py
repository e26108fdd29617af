"""``python -m securechat.server``: start the server with settings from the environment."""

from securechat.cli.serve import run_server

if __name__ == "__main__":
    run_server()
