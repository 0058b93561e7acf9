"""Portfolio construction, risk engine, costs, brokers and the ledger."""
