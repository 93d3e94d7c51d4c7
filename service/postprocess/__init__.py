"""Pure numpy post-processing of model outputs: probabilities, blends, affect space, quality."""
