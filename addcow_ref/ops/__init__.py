"""Operations on whole images, built on the engine: ``create`` makes a new image and
``upgrade`` turns a version 1 image into version 2."""
