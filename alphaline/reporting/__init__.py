"""Reports people look at: self-contained HTML pages of backtests, walk-forwards and days."""
