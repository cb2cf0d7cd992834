"""Terminal output only: rich tables on a terminal, plain text when piped, JSON; no arithmetic."""
