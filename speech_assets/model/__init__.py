"""Character CTC speech-recognition model: architecture, training, decoding, serving."""
