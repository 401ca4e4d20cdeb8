"""liverec.datasets"""
