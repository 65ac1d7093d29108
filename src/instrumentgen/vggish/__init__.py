"""VGGish (Hershey et al. 2017), the embedding of FAD-VGGish (paper Section 3.1): its published
log-mel front end, the network with the published torchvggish weights, and an embedder of notes."""
