"""Offline evaluation of vigil's detectors against public benchmarks."""
