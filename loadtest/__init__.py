"""Load tests of the LTP service (Locust) and the report they produce."""
