"""Tests of customers and customer tokens (`app/customers`)."""
