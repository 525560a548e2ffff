"""What reaches a shopper by mail: password reset links, from the outbox to the mail sender."""
