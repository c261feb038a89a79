"""The product's rules as plain functions and small classes: no database, no HTTP."""
