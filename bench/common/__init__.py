"""What more than one benchmark uses: the keep-alive load generator, the seeding of spaces."""
