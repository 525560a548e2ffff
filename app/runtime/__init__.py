"""The process: settings, the database and its models, serving (and the limits at the edge of
the process), the server secret, password hashing, mail delivery, caches and rate limits."""
