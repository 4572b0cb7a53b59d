"""Training the Render-FM network (`renderfm train`): a manifest of CTs, random crops with
augmentation, dvr targets rendered on the fly, data-parallel steps, resumable checkpoints.
Not shipped in the Slicer extension."""
