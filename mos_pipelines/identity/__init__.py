"""Identity resolution: matching records from many sources to people, and measuring how well it did."""
