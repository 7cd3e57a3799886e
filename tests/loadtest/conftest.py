"""Load tests reuse the service fixtures."""

from tests.app.conftest import server  # noqa: F401
