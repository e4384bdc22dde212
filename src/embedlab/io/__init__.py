"""Reading texts from files and writing vectors to files."""
