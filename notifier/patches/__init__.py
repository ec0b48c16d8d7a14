"""Where Notifier overrides private code of the libraries it runs on: one module a patch.

Each module's docstring names the symbols it touches, the library versions it was checked
against, the upstream issue and why it is needed; ``tests/unit/test_patches.py`` holds a canary
for each that fails the day the library changes under it, and ``pyproject.toml`` caps each
patched library just above the versions checked. The list, with the reasons in short, is
``docs/patches.md``.
"""
