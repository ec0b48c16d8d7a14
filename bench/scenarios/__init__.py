"""The benchmark's scenarios, one module each: ``TITLE``, ``run(bench)``, ``table(r, before)``."""
