"""keraslm's built-in components, registered as internal plugins.

Each module here implements hooks from `keraslm.hookspecs` exactly as an
external plugin would, and is listed in `keraslm.plugins.BUILTIN_PLUGINS`.
Modules stay light: factories are import strings or import Keras inside.
"""
