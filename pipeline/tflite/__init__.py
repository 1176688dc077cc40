"""TFLite files: conversion, evaluation through LiteRT, verification, and the one graph reader."""
