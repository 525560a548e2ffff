"""Protected commerce resources: products, carts, checkout and orders, addresses."""
