"""What the tests share, in two packages: :mod:`.peers`, what the service talks to, and
:mod:`.harness`, what starts and drives the service (no test module imports another)."""
