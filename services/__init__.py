"""What users and other apps talk to: the HTTP API, batch jobs and the CLI."""
