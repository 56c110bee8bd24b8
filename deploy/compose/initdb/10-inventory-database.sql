-- The Order Service's database is POSTGRES_DB; the Inventory Service gets its own.
CREATE DATABASE stockflow_inventory OWNER stockflow;
