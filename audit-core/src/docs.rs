pub fn render_markdown(_: &[&crate::ResourceSchema]) -> String {
    String::new()
}
