"""Data sets (built in, or the user's own files), their checks, and how a split becomes
model inputs."""
