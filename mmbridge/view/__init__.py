"""``mmbridge view``: a local, read-only web app over every evaluation run in a folder."""
