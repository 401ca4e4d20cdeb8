"""liverec.text"""
