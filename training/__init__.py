"""The programs that produce `saved_models/`: training recipes, the trainer and the tuner."""
