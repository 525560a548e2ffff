"""Tests of the commerce resources (`app/store`): products, carts, checkout and orders."""
