"""The values the image options take. Nothing heavy is imported here: the CLI builds its
``--scale`` and ``--channels`` choices from these without loading numpy or Pillow."""

SCALES = ("abs", "minmax", "offset", "clip")
"""How `convcli.images.tonemap.to_display` maps values to [0, 1] for an 8- or 16-bit file."""

AUTO_SCALES = ("auto", *SCALES)
"""What conv and pool take: a scale, or ``auto`` to pick one from the result's range."""

CHANNELS = ("gray", "rgb")
"""What `convcli.images.read.read_image` makes of a file: one grey channel (Rec.601) or three."""
