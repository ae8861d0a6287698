"""A toy GloViTa extension (tests only): a signal modality with its own dataset and transforms, an encoder, and a
step that owns a critic with its own optimizer, alternates updates and draws from an extra loader. GloViTa finds it
through the entry-point group glovita.components; none of GloViTa's own files names it."""
