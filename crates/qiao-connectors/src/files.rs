//! Files as source and sink: CSV, JSON Lines, XML in a watched folder.
