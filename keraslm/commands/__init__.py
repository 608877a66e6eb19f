"""The built-in `keraslm` commands, one module each.

Each module has `configure(parser)` (adds its arguments) and `run(args)`
(runs it, returns an exit status); `keraslm.builtins.commands` registers
them through the `register_commands` hook, as a plugin registers its own.

| command | module |
|---|---|
| `keraslm train` | `keraslm.commands.train` |
| `keraslm evaluate` | `keraslm.commands.evaluate` |
| `keraslm generate` | `keraslm.commands.generate` |
| `keraslm export` | `keraslm.commands.export` |
| `keraslm plot` | `keraslm.commands.plot` |
| `keraslm plugins` | `keraslm.commands.plugins` |
| `keraslm tokenizer` | `keraslm.commands.tokenizer` |
| `keraslm quickstart` | `keraslm.commands.quickstart` |
"""
