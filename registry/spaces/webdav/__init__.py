"""What the registry adds to every space's WebDAV, whatever back end serves the files: class 2
locking, dead properties and chunked uploads, kept in the registry's database so that every
replica and every kind of storage provider behaves the same."""
