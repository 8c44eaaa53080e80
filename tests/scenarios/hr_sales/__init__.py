"""The HR + sales scenario: one legacy store system (people, catalogue, invoices) into a new schema."""
