"""The Render-FM network's side of the data flow: the 6 input channels it reads from a CT and a
preset (inputs.py). The model itself, its weights and its training come with the network issue."""
