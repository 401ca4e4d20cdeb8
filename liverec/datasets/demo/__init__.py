"""liverec.datasets.demo"""
