"""liverec.ranking"""
