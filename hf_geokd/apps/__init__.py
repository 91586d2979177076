"""Applications built on the library: the ``geokd`` command line, the embedded demo, its corpus, recipe parsing."""
