"""Front ends: the CLI, status, tuning, retrospective and the review web app. They drive
the engine and read the store; nothing below imports them."""
